package hub

import (
	"os"
	"path/filepath"
	"strings"
)

// OptionsFromEnv reads the environment the way huggingface_hub does
// (constants.py and utils/_auth.py there):
//
//   - HF_ENDPOINT: another hub (default https://huggingface.co).
//   - The token: HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file
//     HF_TOKEN_PATH (default $HF_HOME/token, which `hf auth login` writes),
//     with CR and LF removed and spaces trimmed; empty means none.
//   - HF_HOME: default $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
//   - The cache: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub.
//   - Offline: HF_HUB_OFFLINE (or, when it is unset or empty,
//     TRANSFORMERS_OFFLINE) is 1, ON, YES or TRUE.
//
// Paths have ~ and $VARS expanded, as Python expands them.
func OptionsFromEnv() Options {
	o := Options{Endpoint: os.Getenv("HF_ENDPOINT")}
	home := expand(os.Getenv("HF_HOME"))
	if home == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			if h, err := os.UserHomeDir(); err == nil {
				cache = filepath.Join(h, ".cache")
			}
		}
		if cache != "" {
			home = filepath.Join(cache, "huggingface")
		}
	}
	o.CacheDir = firstSet("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
	if o.CacheDir != "" {
		o.CacheDir = expand(o.CacheDir)
	} else if home != "" {
		o.CacheDir = filepath.Join(home, "hub")
	}
	o.Token, o.TokenSource = tokenFromEnv(home)
	o.Offline = isTrue(firstSet("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
	return o
}

// tokenFromEnv returns the token and where it came from.
func tokenFromEnv(home string) (token, source string) {
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := os.Getenv(k); v != "" {
			// Like Python: an empty-after-trimming HF_TOKEN does not fall
			// through to the next source.
			if t := cleanToken(v); t != "" {
				return t, k
			}
			return "", ""
		}
	}
	p := expand(os.Getenv("HF_TOKEN_PATH"))
	if p == "" {
		if home == "" {
			return "", ""
		}
		p = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", ""
	}
	if t := cleanToken(string(b)); t != "" {
		return t, p
	}
	return "", ""
}

// cleanToken removes CR and LF anywhere and spaces around, as
// huggingface_hub's _clean_token does: a token file ends with a newline.
func cleanToken(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
}

func firstSet(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func isTrue(v string) bool {
	switch strings.ToUpper(v) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// expand does what Python's os.path.expandvars(os.path.expanduser(p)) does:
// a leading ~ is the home folder, $VAR and ${VAR} are replaced when set and
// kept as written when not.
func expand(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") || strings.HasPrefix(p, `~\`) {
		if h, err := os.UserHomeDir(); err == nil {
			p = h + p[1:]
		}
	}
	if !strings.Contains(p, "$") {
		return p
	}
	return os.Expand(p, func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return "${" + k + "}"
	})
}
