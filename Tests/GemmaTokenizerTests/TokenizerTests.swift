// Placeholder until the tokenizer lands (issue 3).
