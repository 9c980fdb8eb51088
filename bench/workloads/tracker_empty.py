"""An empty program: measures the tracker's start-up cost."""
