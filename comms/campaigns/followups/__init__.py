"""Follow-up of trial guests and members (DESIGN §5): rules, planning, stops, and what staff see.
The design choice is explained in ``services``."""
