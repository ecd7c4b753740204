def test_data_loaded(training_images, training_labels, test_images, test_labels):
    # The build writes the kit's check of q1_load_data here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q1_load_data", public=True)

