"""Sample functions shipped with Lamina (used by `lamina up --demo`)."""
