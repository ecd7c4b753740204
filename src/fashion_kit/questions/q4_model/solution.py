# BEGIN SOLUTION NO PROMPT
model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
# END SOLUTION
""" # BEGIN PROMPT
model = tf.keras.models.Sequential([
    ...
])
""" # END PROMPT
