"""Files and formats: images, coefficient archives (.npz), safe opening, atomic outputs."""
