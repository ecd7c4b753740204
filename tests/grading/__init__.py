"""The grading core's tests: one submission in two phases (fashion_kit.grading)."""
