def test_normalized_range(training_images, test_images):
    # The build writes the kit's check of q3_normalize here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q3_normalize", public=True)

