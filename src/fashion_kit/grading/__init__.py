"""The grading core: one submission, graded in two phases.

Every grading process (the core, phase 1, the evaluator, the trainer) imports this package first, so
jsonschema's slow optional IRI checker is skipped in all of them before anything imports jsonschema:
the core's own import of it (for the challenge's recipe) cost a second of CPU per grading.
"""

from .. import contract

contract.skip_slow_optional_modules()
