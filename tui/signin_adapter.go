package tui

import "github.com/writhq/writ/tui/signin"

// SignInWith adapts the OIDC sign-in screens of tui/signin to the console:
//
//	tui.Options{SignIn: func() tui.SignInScreen {
//		return tui.SignInWith(signin.New(client, signin.DefaultStyles()))
//	}}
func SignInWith(m *signin.Model) SignInScreen { return signInAdapter{m} }

type signInAdapter struct{ *signin.Model }

// Done converts the operator session into the console's.
func (s signInAdapter) Done() (Session, bool) {
	os, ok := s.Model.Done()
	if !ok || os == nil {
		return Session{}, false
	}
	return Session{Operator: os.Operator, Expires: os.Expiry}, true
}
