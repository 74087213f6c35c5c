"""The study: arms, the one training launcher, evaluation on benchmark folders, tables, and the demo."""
