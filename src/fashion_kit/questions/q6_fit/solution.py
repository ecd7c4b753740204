history = model.fit(training_images, training_labels, epochs=5)  # SOLUTION
