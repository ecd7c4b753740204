"""The lesson's own code as a plain script: the baseline that grading is measured against.

Exactly the steps the lesson teaches, in order, with nothing around them: load Fashion-MNIST,
normalise with / 255.0, the three layers, compile, fit 5 epochs (verbose=2: one line per epoch, as a
script would print), save as .h5 and load it back, evaluate, summary.
"""

import tensorflow as tf

fashion_mnist = tf.keras.datasets.fashion_mnist
(training_images, training_labels), (test_images, test_labels) = fashion_mnist.load_data()

training_images = training_images / 255.0
test_images = test_images / 255.0

model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(training_images, training_labels, epochs=5, verbose=2)

model.save("fashion_mnist_model.h5")
loaded_model = tf.keras.models.load_model("fashion_mnist_model.h5")

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
print("test loss:", test_loss)
print("test accuracy:", test_acc)
model.summary()
