package openai

import (
	"fmt"
	"os"
)

// DefaultKeyEnv is the environment variable an API key is read from when
// no other is named.
const DefaultKeyEnv = "OPENAI_API_KEY"

// KeyFromEnv returns the API key held by the environment variable name:
// an error when a named variable is empty or unset; with name "", the value
// of OPENAI_API_KEY, which may be empty (a local server needs no key).
func KeyFromEnv(name string) (string, error) {
	if name == "" {
		return os.Getenv(DefaultKeyEnv), nil
	}
	key := os.Getenv(name)
	if key == "" {
		return "", fmt.Errorf("--api-key-env %s: the variable is empty or unset", name)
	}
	return key, nil
}
