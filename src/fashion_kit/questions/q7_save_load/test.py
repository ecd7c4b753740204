def test_saved_and_loaded(model, loaded_model):
    # The build writes the kit's check of q7_save_load here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q7_save_load", public=True)

