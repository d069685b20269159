"""The error raised for inputs that cannot start a training."""


class TrainingInputError(ValueError):
    """A problem found before anything starts; the message says what is wrong and what to do."""
