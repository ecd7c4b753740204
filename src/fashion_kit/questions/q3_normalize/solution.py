training_images = training_images / 255.0  # SOLUTION
test_images = test_images / 255.0  # SOLUTION
