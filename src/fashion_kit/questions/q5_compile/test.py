def test_compiled(model):
    # The build writes the kit's check of q5_compile here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q5_compile", public=True)

