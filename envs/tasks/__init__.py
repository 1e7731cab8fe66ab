"""One module per task; each defines the task's robosuite scene, its scripted expert and ``VARIANTS``."""
