"""Console entry points. Nothing here may import eventlet."""
