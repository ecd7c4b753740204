def test_class_names_shape(class_names):
    # The build writes the kit's check of q2_class_names here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q2_class_names", public=True)

