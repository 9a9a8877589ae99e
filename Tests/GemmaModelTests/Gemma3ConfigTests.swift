// Placeholder until the model tests land (issue 4).
