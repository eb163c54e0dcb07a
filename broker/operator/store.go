package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"
)

// sessionFile is what a remembered session keeps on disk, mode 0600. The
// tokens are as sensitive as a password for as long as they live.
type sessionFile struct {
	Version      int       `json:"version"`
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	IDToken      string    `json:"id_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

const sessionFileVersion = 1

// remember writes the session to disk when the operator asked for it. A
// failure is logged, not returned: the session works in memory all the same.
func (c *Client) remember(s *Session) {
	if !c.cfg.Remember || s == nil || s.tokens == nil {
		return
	}
	if err := c.save(s); err != nil {
		c.cfg.Logger.Warn("operator session not remembered", "path", c.cfg.SessionPath, "error", err)
	}
}

func (c *Client) save(s *Session) error {
	f := sessionFile{
		Version:  sessionFileVersion,
		Issuer:   c.cfg.Issuer,
		ClientID: c.cfg.ClientID,
		IDToken:  s.tokens.idToken,
	}
	if t := s.tokens.oauth; t != nil {
		f.AccessToken, f.TokenType, f.RefreshToken, f.Expiry = t.AccessToken, t.TokenType, t.RefreshToken, t.Expiry
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.cfg.SessionPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Write a 0600 temporary file beside it and rename, so a crash never
	// leaves half a file and the tokens are never world-readable.
	tmp, err := os.CreateTemp(dir, ".session-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.cfg.SessionPath)
}

// Forget removes the remembered session, if any.
func (c *Client) Forget() {
	if !c.cfg.Remember {
		return
	}
	if err := os.Remove(c.cfg.SessionPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.cfg.Logger.Warn("remembered operator session not removed", "path", c.cfg.SessionPath, "error", err)
	}
}

// Resume loads the remembered session and verifies it again as if it had
// just arrived: signature, issuer, audience, at_hash and the approver group.
// An expired one is refreshed when it can be. It returns ErrNoSession when
// nothing is remembered (or remembering is off), ErrSessionEnded when what
// was remembered can no longer be used.
func (c *Client) Resume(ctx context.Context) (*Session, error) {
	if !c.cfg.Remember {
		return nil, ErrNoSession
	}
	path := c.cfg.SessionPath
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("operator session file %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("operator session file %s is readable by others (mode %04o): remove it and sign in again", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("operator session file %s: %w", path, err)
	}
	var f sessionFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != sessionFileVersion || f.IDToken == "" {
		c.Forget()
		return nil, ErrNoSession
	}
	if f.Issuer != c.cfg.Issuer || f.ClientID != c.cfg.ClientID {
		// Remembered for another provider or client: not ours to use.
		return nil, ErrNoSession
	}
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: f.AccessToken, TokenType: f.TokenType, RefreshToken: f.RefreshToken, Expiry: f.Expiry}
	s, err := c.verifyIDToken(ctx, p, f.IDToken, tok, verifyCheck{allowExpired: true})
	if err != nil {
		c.Forget()
		return nil, err
	}
	if !s.Ended(c.cfg.Now()) {
		return s, nil
	}
	if !s.Refreshable() {
		c.Forget()
		return nil, ErrSessionEnded
	}
	return c.Refresh(ctx, s)
}
