package hub

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

var (
	// ErrOffline marks a model the cache cannot supply: not there, or not
	// complete, while offline or while the hub cannot be reached.
	ErrOffline = errors.New("hub: not in the cache")
	// ErrUnreachable marks a hub (or download host) that cannot be reached:
	// DNS, refused or timed-out connections.
	ErrUnreachable = errors.New("hub: unreachable")
	// ErrGated marks a gated repository the token has no access to.
	ErrGated = errors.New("hub: gated repository")
	// ErrNotFound marks a repository, revision or file that does not exist
	// or that the token cannot see.
	ErrNotFound = errors.New("hub: not found")
)

// Error is a refusal from the hub, with the hub's own explanation (its
// X-Error-Code and X-Error-Message headers, as huggingface_hub reads them)
// and what to do about it.
type Error struct {
	Repo     string
	Revision string
	File     string // "" when the refusal is about the repository
	Status   int    // the HTTP status code
	Code     string // X-Error-Code: GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound, …
	Message  string // X-Error-Message
	Advice   string // what to do
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hub: %s", e.Repo)
	if e.File != "" {
		fmt.Fprintf(&b, ": %s", e.File)
	}
	fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(e.Message, "."))
	}
	if e.Advice != "" {
		fmt.Fprintf(&b, ". %s", e.Advice)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrGated) and errors.Is(err, ErrNotFound) work.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrGated:
		return e.Code == "GatedRepo"
	case ErrNotFound:
		switch e.Code {
		case "RepoNotFound", "RevisionNotFound", "EntryNotFound":
			return true
		}
		return e.Code == "" && e.Status == http.StatusNotFound
	}
	return false
}

const login = "log in with `hf auth login` or set HF_TOKEN"

// refusal explains a status the hub answered for repo (and file).
func refusal(o *Options, repo, file string, status int, h http.Header) *Error {
	e := &Error{Repo: repo, Revision: o.Revision, File: file, Status: status,
		Code: h.Get("X-Error-Code"), Message: h.Get("X-Error-Message")}
	page := o.Endpoint + "/" + repo
	token := "the token"
	if o.TokenSource != "" {
		token = "the token from " + o.TokenSource
	}
	switch {
	case e.Code == "GatedRepo" && o.Token == "":
		e.Advice = fmt.Sprintf("The model is gated: request access at %s (logged in on the website), then %s", page, login)
	case e.Code == "GatedRepo":
		e.Advice = fmt.Sprintf("The model is gated and %s has no access yet: request access at %s with that account "+
			"(approval can take a while); a fine-grained token also needs read access to public gated repositories", token, page)
	case e.Message == "Invalid credentials in Authorization header":
		e.Advice = fmt.Sprintf("%s is not valid: make one at %s/settings/tokens, then %s", capitalize(token), o.Endpoint, login)
	case e.Code == "RevisionNotFound":
		e.Advice = fmt.Sprintf("%s has no revision %q: check the branch, tag or commit", repo, o.Revision)
	case e.Code == "EntryNotFound":
		e.Advice = fmt.Sprintf("%s@%s has no file %s", repo, o.Revision, file)
	case e.Message == "Access to this resource is disabled.":
		e.Advice = "The repository has been disabled"
	case e.Code == "RepoNotFound" || status == http.StatusUnauthorized || (status == http.StatusNotFound && file == ""):
		if o.Token == "" {
			e.Advice = fmt.Sprintf("No repository %s, or it is private: check the id at %s; for a private repository %s", repo, page, login)
		} else {
			e.Advice = fmt.Sprintf("No repository %s, or it is private and %s cannot see it: check the id at %s and the token's permissions", repo, token, page)
		}
	case status == http.StatusForbidden && o.Token == "":
		e.Advice = "Access refused: " + login
	case status == http.StatusForbidden:
		e.Advice = fmt.Sprintf("Access refused: make sure %s has the permissions this repository needs", token)
	case status == http.StatusTooManyRequests:
		e.Advice = "Too many requests: wait and rerun (logged-in users get a higher limit: " + login + ")"
	case status >= 500:
		e.Advice = "The hub failed: rerun later (what was downloaded is kept)"
	}
	return e
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// UnreachableError is a hub or download host that cannot be reached, with
// what the cache could not supply instead.
type UnreachableError struct {
	Host  string // the endpoint or download host
	Repo  string
	Err   error // the network error
	Cache error // why the cache cannot stand in (wraps ErrOffline); nil when not asked
}

func (e *UnreachableError) Error() string {
	s := fmt.Sprintf("hub: cannot reach %s to fetch %s (%v). Without the hub, pass a local model folder "+
		"(config.json, tokenizer.json, *.safetensors) instead of %s, or a Hugging Face cache that holds it: "+
		"copy one from a machine that downloaded it and set HF_HUB_CACHE (or HF_HOME) to it; HF_HUB_OFFLINE=1 "+
		"then skips the network", e.Host, e.Repo, e.Err, e.Repo)
	if e.Cache != nil {
		s += ". The cache cannot stand in: " + strings.TrimPrefix(e.Cache.Error(), ErrOffline.Error()+": ")
	}
	return s
}

func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

func (e *UnreachableError) Unwrap() []error {
	if e.Cache != nil {
		return []error{e.Err, e.Cache}
	}
	return []error{e.Err}
}

// unreachable tells a network that cannot reach the host (DNS, refused,
// unroutable, timed out, proxy) from other failures.
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
