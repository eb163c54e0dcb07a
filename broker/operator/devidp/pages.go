package devidp

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// pages are the provider's own screens: the sign-in page of the code flow
// and the verification page of the device flow. Both are plain forms a
// headless client can post:
//
//	POST /login  authRequestID=…&username=dana&action=allow|deny
//	POST /device user_code=…&username=dana&action=allow|deny
type pages struct {
	storage  *storage
	opts     Options
	provider *op.Provider
	issuer   string
}

type pageData struct {
	Title, Message, Error string
	AuthRequestID         string
	UserCode              string
	Scopes                string
	Users                 []User
	Action                string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DEV · {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;line-height:1.5}
.dev{background:#ffd200;color:#000;padding:.3em .6em;font-weight:bold}label{display:block;margin:.3em 0}
.err{color:#b00020}</style></head><body>
<p class="dev">DEV · writ development identity provider · no passwords · loopback only</p>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{if .Action}}<form method="post" action="{{.Action}}">
{{if .AuthRequestID}}<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">{{end}}
{{if eq .Action "/device"}}<label>Code <input name="user_code" value="{{.UserCode}}" autocomplete="off" autofocus></label>{{end}}
{{if .Scopes}}<p>writ asks for: {{.Scopes}}</p>{{end}}
{{range $i, $u := .Users}}<label><input type="radio" name="username" value="{{$u.Username}}"{{if eq $i 0}} checked{{end}}> {{$u.Name}} &lt;{{$u.Email}}&gt; · groups: {{range $j, $g := $u.Groups}}{{if $j}}, {{end}}{{$g}}{{end}}</label>
{{end}}<p><button name="action" value="allow">Sign in</button> <button name="action" value="deny">Deny</button></p>
</form>{{end}}
</body></html>
`))

func (p *pages) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// login is where op sends the browser for an authorization request.
func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, pageData{Title: "Bad request", Error: err.Error()})
		return
	}
	id := r.Form.Get("authRequestID")
	username, action := r.Form.Get("username"), r.Form.Get("action")
	if r.Method == http.MethodGet && p.opts.AutoApprove != "" {
		username, action = p.opts.AutoApprove, "allow"
	}
	if action == "" {
		p.render(w, http.StatusOK, pageData{Title: "Sign in to writ", AuthRequestID: id, Users: p.opts.Users, Action: "/login"})
		return
	}
	if r.Method != http.MethodPost && p.opts.AutoApprove == "" {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	ar, err := p.storage.AuthRequestByID(r.Context(), id)
	if err != nil {
		p.render(w, http.StatusBadRequest, pageData{Title: "Sign-in failed", Error: "This sign-in request is unknown or finished: start again from writ."})
		return
	}
	if action == "deny" {
		op.AuthRequestError(w, r, ar, oidc.ErrAccessDenied().WithDescription("the user denied the sign-in"), p.provider)
		return
	}
	u, ok := p.opts.userByName(username)
	if !ok {
		p.render(w, http.StatusBadRequest, pageData{Title: "Sign in to writ", AuthRequestID: id, Users: p.opts.Users, Action: "/login", Error: "Pick a user."})
		return
	}
	if err := p.storage.signIn(id, u); err != nil {
		p.render(w, http.StatusBadRequest, pageData{Title: "Sign-in failed", Error: err.Error()})
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	http.Redirect(w, r, op.AuthCallbackURL(p.provider)(ctx, id), http.StatusFound)
}

// device is the verification page of the device flow (RFC 8628 §3.3).
func (p *pages) device(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, pageData{Title: "Bad request", Error: err.Error()})
		return
	}
	code := strings.TrimSpace(r.Form.Get("user_code"))
	d := pageData{Title: "Sign in to writ on another device", UserCode: code, Users: p.opts.Users, Action: "/device",
		Message: "Check that this code is the one your terminal shows."}
	if r.Method != http.MethodPost {
		if code != "" {
			if scopes, err := p.storage.deviceScopes(code); err == nil {
				d.Scopes = strings.Join(scopes, " ")
			} else {
				d.Error = err.Error()
			}
		}
		p.render(w, http.StatusOK, d)
		return
	}
	var err error
	switch r.Form.Get("action") {
	case "allow":
		err = p.storage.approveDevice(code, r.Form.Get("username"))
	case "deny":
		err = p.storage.denyDevice(code)
	default:
		d.Error = `action must be "allow" or "deny"`
		p.render(w, http.StatusBadRequest, d)
		return
	}
	if err != nil {
		d.Error = err.Error()
		p.render(w, http.StatusBadRequest, d)
		return
	}
	msg := "Signed in. Return to your terminal."
	if r.Form.Get("action") == "deny" {
		msg = "Sign-in denied. Return to your terminal."
	}
	p.render(w, http.StatusOK, pageData{Title: "Done", Message: msg})
}
