"""A recipient's side of a delivery: its proof of origin checked, each delivery read once."""
