def test_model_layers(model):
    # The build writes the kit's check of q4_model here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q4_model", public=True)

