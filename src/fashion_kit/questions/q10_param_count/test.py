def test_param_count_adds_up(hidden_params, output_params, total_params):
    # The build writes the kit's check of q10_param_count here (its folder's check.py): the same code
    # decides the grade, so what this check says is what the grader says.
    CHECK("q10_param_count", public=True)

