model.save("fashion_mnist_model.keras")  # SOLUTION
loaded_model = tf.keras.models.load_model("fashion_mnist_model.keras")  # SOLUTION
