def test_evaluated(test_loss, test_acc, model, test_images, test_labels):
    # The build writes the kit's check of q8_evaluate here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q8_evaluate", public=True)

