"""The grading core: one submission, graded in two phases."""
