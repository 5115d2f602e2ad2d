"""The course around the notebooks: each notebook's exercise (exercises.py, checkers.py), its
solution (solutions.py), and the table of what the offline Stripe does differently
(differences.py)."""
