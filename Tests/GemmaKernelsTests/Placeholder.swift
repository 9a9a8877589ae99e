// Placeholder until kernel tests land.
