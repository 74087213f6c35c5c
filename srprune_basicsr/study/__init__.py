"""The study (issue 7): evaluation on benchmark folders; the arms runner comes on top of it."""
