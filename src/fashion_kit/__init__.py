"""fashion-kit: an auto-graded Fashion-MNIST assignment built on Otter-Grader.

Split by verb, like Otter: ``assign`` builds the assignment, ``run`` grades one submission,
``data`` prepares the data set offline.
"""

__version__ = "0.1.0"
