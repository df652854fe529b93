"""The ARM API's input rules: what a request may ask for, with the error that says what to fix."""
