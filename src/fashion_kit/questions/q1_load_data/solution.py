fashion_mnist = tf.keras.datasets.fashion_mnist
# BEGIN SOLUTION NO PROMPT
(training_images, training_labels), (test_images, test_labels) = fashion_mnist.load_data()
# END SOLUTION
""" # BEGIN PROMPT
(training_images, training_labels), (test_images, test_labels) = ...
""" # END PROMPT
print(training_images.shape, test_images.shape)
