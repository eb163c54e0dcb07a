package signin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker/operator"
)

// View renders the screen in the size last given to SetSize.
func (m *Model) View() string {
	w := max(m.width, 20)
	var body string
	switch m.screen {
	case screenStarting:
		body = m.spinnerLine("Contacting the identity provider at " + hostOf(m.client.Issuer()) + "…")
	case screenDevice:
		body = m.deviceView(w)
	case screenBrowser:
		body = m.browserView(w)
	case screenExpired:
		body = m.problem(w, "The sign-in expired", m.expiredText(), "r", "get a new code")
	case screenDenied:
		body = m.problem(w, "Sign-in denied",
			"The identity provider says the sign-in was denied, at the sign-in page or by its own policy.", "r", "try again")
	case screenNotApprover:
		body = m.notApproverView(w)
	case screenUnreachable:
		body = m.problem(w, "Cannot reach the identity provider",
			clean(m.err.Error())+"\n\nApprovals wait until you can sign in; revocation works without a session.", "r", "retry")
	case screenFailed:
		body = m.problem(w, "Sign-in failed", clean(m.err.Error()), "r", "try again")
	case screenCancelled:
		body = m.styles.Muted.Render("Sign-in cancelled.")
	case screenDone:
		body = m.styles.OK.Render("Signed in as "+clean(m.session.Operator.Display())) +
			m.styles.Muted.Render(" · session ends in "+countdown(m.session.Remaining(m.client.Now())))
	}
	out := m.header(w) + "\n\n" + body
	return lipgloss.NewStyle().MaxWidth(w).MaxHeight(max(m.height, 1)).Render(out)
}

// header is the title, and on the right which provider, tagged DEV for the
// development one.
func (m *Model) header(w int) string {
	title := m.styles.Title.Render("Sign in to writ")
	where := m.styles.Muted.Render(hostOf(m.client.Issuer()))
	if m.client.Dev() {
		where = m.styles.Dev.Render("DEV") + " " + m.styles.Muted.Render("development provider at "+hostOf(m.client.Issuer()))
	}
	gap := w - lipgloss.Width(title) - lipgloss.Width(where)
	if gap < 2 {
		return title
	}
	return title + strings.Repeat(" ", gap) + where
}

func (m *Model) deviceView(w int) string {
	da, st := m.device, m.styles
	qr := renderQR(da.VerificationURIComplete)
	qrW := lipgloss.Width(qr)
	// The QR code goes on the right when it fits beside a text column of
	// at least 36 cells and below the header within the height.
	showQR := qr != "" && w-qrW-3 >= 36 && lipgloss.Height(qr)+4 <= m.height
	textW := w
	if showQR {
		textW = w - qrW - 3
	}

	var left []string
	left = append(left,
		st.Text.Render("On your phone or another computer, open"),
		st.URL.Render(indent(da.VerificationURI, textW)),
		st.Text.Render("and enter this code:"),
		st.Code.Render(spaced(da.UserCode)),
	)
	switch {
	case showQR:
		left = append(left, st.Muted.Render(wrap("Or scan the QR code with your phone: it opens the page with the code filled in.", textW)))
	case qr != "":
		left = append(left, st.Muted.Render(wrap("(make the terminal larger to show a QR code)", textW)))
	}
	left = append(left, "", m.spinnerLine("Waiting for you to sign in…"), m.expiryLine(), "",
		m.help([2]string{"esc", "cancel"}))
	text := strings.Join(left, "\n")
	if !showQR {
		return text
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, text, "   ", st.QR.Render(qr))
}

func (m *Model) browserView(w int) string {
	ba, st := m.browser, m.styles
	lead := "No browser could be opened from here. Open this address in a browser on this machine:"
	if ba.Opened {
		lead = "Your browser should have opened to sign you in. If it did not, open this address in a browser on this machine:"
	}
	redirect, _ := url.Parse(ba.RedirectURL)
	where := ""
	if redirect != nil {
		where = " (writ listens on " + redirect.Host + ")"
	}
	return strings.Join([]string{
		st.Text.Render(wrap(lead, w)),
		"",
		st.URL.Render(indent(ba.URL, w)),
		"",
		m.spinnerLine("Waiting for the browser to come back" + where + "…"),
		"",
		m.help([2]string{"esc", "cancel"}),
	}, "\n")
}

func (m *Model) notApproverView(w int) string {
	st := m.styles
	var na *operator.NotApproverError
	errors.As(m.err, &na)
	who := "You"
	if na != nil {
		who = "You signed in as " + st.Strong.Render(clean(na.Operator.Display())) + ", but you"
	}
	text := strings.Join([]string{
		wrap(who+" are not in the approver group "+st.Strong.Render(fmt.Sprintf("%q", m.client.ApproverGroup()))+
			", so writ will not let you approve requests.", w),
		"",
		st.Error.Render(wrap(clean(m.err.Error()), w)),
		"",
		st.Muted.Render(wrap("Ask your identity provider's administrator to add you to the group, "+
			"or check --approver-group and --groups-claim.", w)),
	}, "\n")
	return st.Error.Render("Signed in, but not an approver") + "\n\n" + text + "\n\n" +
		m.help([2]string{"r", "sign in as someone else"}, [2]string{"esc", "cancel"})
}

// problem is a failure screen: a heading, what happened, a retry key.
func (m *Model) problem(w int, title, text, key, action string) string {
	return m.styles.Error.Render(title) + "\n\n" + m.styles.Text.Render(wrap(text, w)) + "\n\n" +
		m.help([2]string{key, action}, [2]string{"esc", "cancel"})
}

func (m *Model) expiredText() string {
	if errors.Is(m.err, operator.ErrBrowserTimeout) {
		return "The browser sign-in was not finished in time."
	}
	return "Nobody finished signing in with the code before it expired."
}

func (m *Model) spinnerLine(text string) string {
	return m.spinner.View() + " " + m.styles.Text.Render(text)
}

// expiryLine counts down to the code's expiry.
func (m *Model) expiryLine() string {
	left := m.device.Expiry.Sub(m.now)
	if left <= 0 {
		return m.styles.Warn.Render("The code has expired.")
	}
	line := "The code expires in " + countdown(left) + "."
	if left < time.Minute {
		return m.styles.Warn.Render(line)
	}
	return m.styles.Muted.Render(line)
}

func (m *Model) help(pairs ...[2]string) string {
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = m.styles.HelpKey.Render(p[0]) + " " + m.styles.Help.Render(p[1])
	}
	return strings.Join(parts, m.styles.Help.Render(" · "))
}

// countdown formats a duration as m:ss, or h:mm:ss from an hour up.
func countdown(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	h, mnt, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, mnt, s)
	}
	return fmt.Sprintf("%d:%02d", mnt, s)
}

// spaced puts a space between the characters of a user code, so it reads
// clearly and is typed correctly: "BCDF-GHJK" → "B C D F - G H J K".
func spaced(code string) string {
	return strings.Join(strings.Split(clean(code), ""), " ")
}

// wrap word-wraps text to width cells at spaces only (flags like
// --groups-claim stay whole), breaking a word longer than the width (a URL)
// where it must. Styled words keep their escape sequences.
func wrap(text string, width int) string {
	width = max(width, 1)
	var out []string
	for para := range strings.SplitSeq(text, "\n") {
		line, lineW := "", 0
		for _, word := range strings.Fields(para) {
			ww := ansi.StringWidth(word)
			if lineW > 0 && lineW+1+ww > width {
				out, line, lineW = append(out, line), "", 0
			}
			if ww > width {
				pieces := strings.Split(ansi.Hardwrap(line+sep(lineW)+word, width, false), "\n")
				out = append(out, pieces[:len(pieces)-1]...)
				line = pieces[len(pieces)-1]
				lineW = ansi.StringWidth(line)
				continue
			}
			line += sep(lineW) + word
			lineW += len(sep(lineW)) + ww
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func sep(lineW int) string {
	if lineW > 0 {
		return " "
	}
	return ""
}

// indent shows a URL indented by two cells when it fits the width. One
// that does not is broken at the width with no indent, so the pieces join
// back without spaces, and every piece is an OSC 8 hyperlink to the whole
// URL, so a click on any of them opens it unbroken.
func indent(url string, width int) string {
	link := func(s string) string { return ansi.SetHyperlink(url) + s + ansi.ResetHyperlink() }
	if ansi.StringWidth(url)+2 <= width {
		return "  " + link(url)
	}
	lines := strings.Split(ansi.Hardwrap(url, max(width, 1), false), "\n")
	for i, l := range lines {
		lines[i] = link(l)
	}
	return strings.Join(lines, "\n")
}

// hostOf is the host of an issuer URL, for headings.
func hostOf(issuer string) string {
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		return u.Host + strings.TrimSuffix(u.Path, "/")
	}
	return clean(issuer)
}

// clean neutralises text that came from the provider (names, error
// descriptions): control characters and escape sequences cannot reach the
// terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) {
			return '�'
		}
		return r
	}, s)
}
