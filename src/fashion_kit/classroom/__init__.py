"""Grading a whole class: intake of the uploads, the records on disk, the batch and its exports."""
