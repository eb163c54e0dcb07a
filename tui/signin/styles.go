package signin

import (
	"charm.land/lipgloss/v2"
)

// Styles are the sign-in screens' styles. The console fills them from its
// theme; DefaultStyles uses attributes only, plus the two colours a QR code
// needs to scan on any background.
type Styles struct {
	Title  lipgloss.Style // the screen's heading
	Text   lipgloss.Style // ordinary text
	Muted  lipgloss.Style // hints and secondary text
	Strong lipgloss.Style // names, the group, the issuer
	// Code frames the user code; it should be bold and bordered.
	Code lipgloss.Style
	URL  lipgloss.Style // verification and authorization URLs
	// QR draws the QR code: light foreground on a dark background.
	QR lipgloss.Style
	// Dev tags the development provider; it must stand out without colour.
	Dev     lipgloss.Style
	Spinner lipgloss.Style
	Warn    lipgloss.Style // expiring soon, expired, denied
	Error   lipgloss.Style // not an approver, unreachable, failed
	OK      lipgloss.Style // signed in
	HelpKey lipgloss.Style
	Help    lipgloss.Style
}

// DefaultStyles are plain styles that work in monochrome.
func DefaultStyles() Styles {
	s := lipgloss.NewStyle()
	return Styles{
		Title:   s.Bold(true),
		Text:    s,
		Muted:   s.Faint(true),
		Strong:  s.Bold(true),
		Code:    s.Bold(true).Border(lipgloss.DoubleBorder()).Padding(0, 2),
		URL:     s.Underline(true),
		QR:      s.Foreground(lipgloss.BrightWhite).Background(lipgloss.Black),
		Dev:     s.Bold(true).Reverse(true).Padding(0, 1),
		Spinner: s,
		Warn:    s.Bold(true),
		Error:   s.Bold(true),
		OK:      s.Bold(true),
		HelpKey: s.Bold(true),
		Help:    s.Faint(true),
	}
}
