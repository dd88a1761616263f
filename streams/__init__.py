"""The stream processors (faust-streaming): alerts topic -> incident store -> incident events."""
