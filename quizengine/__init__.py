"""quizengine: a quiz and assessment engine for Module 04 (neural networks)."""

__version__ = "0.1.0"
