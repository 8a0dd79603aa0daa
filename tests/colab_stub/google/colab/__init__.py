"""A stand-in for Colab's ``google.colab``, for running the notebook's Colab branch headless in tests."""
