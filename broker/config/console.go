package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Console is the console's section of the configuration file: the
// defaults of `writ console` flags, which flags override.
type Console struct {
	Theme  string `yaml:"theme"`  // default, high-contrast or monochrome
	Notify string `yaml:"notify"` // bell, osc9 or off
	Mouse  *bool  `yaml:"mouse"`
	OIDC   OIDC   `yaml:"oidc"`
}

// OIDC is the operator sign-in section of the console configuration.
type OIDC struct {
	Issuer          string `yaml:"issuer"`
	ClientID        string `yaml:"client_id"`
	Scopes          string `yaml:"scopes"`
	ApproverGroup   string `yaml:"approver_group"`
	GroupsClaim     string `yaml:"groups_claim"`
	Login           string `yaml:"login"`
	RememberSession *bool  `yaml:"remember_session"`
	// The client secret is never read from this file: pass it with
	// --oidc-client-secret or WRIT_OIDC_CLIENT_SECRET.
}

// LoadConsole reads the console section of the configuration at path.
func LoadConsole(path string) (Console, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Console{}, fmt.Errorf("read configuration: %w", err)
	}
	return ParseConsole(path, b)
}

// ParseConsole reads the console section of a configuration read from name.
func ParseConsole(name string, data []byte) (Console, error) {
	if err := checkFile(name, data, reflect.TypeOf(file{}), ""); err != nil {
		return Console{}, err
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Console{}, yamlError(name, err)
	}
	var c Console
	if f.Console.Kind == 0 {
		return c, nil
	}
	if err := checkTree(&f.Console, reflect.TypeOf(c), "console", 0); err != nil {
		return Console{}, yamlError(name, err)
	}
	if err := decodeStrict(&f.Console, &c); err != nil {
		return Console{}, yamlError(name, err)
	}
	if n := mapping(&f.Console, "oidc"); n != nil && n.Kind == yaml.MappingNode {
		if err := checkFields(n, &c.OIDC); err != nil {
			return Console{}, yamlError(name, err)
		}
	}
	switch c.Theme {
	case "", "default", "high-contrast", "monochrome":
	default:
		return Console{}, &Error{File: name, Line: f.Console.Line, Field: "console.theme", Msg: fmt.Sprintf("unknown theme %q (want default, high-contrast or monochrome)", c.Theme)}
	}
	switch c.Notify {
	case "", "bell", "osc9", "off":
	default:
		return Console{}, &Error{File: name, Line: f.Console.Line, Field: "console.notify", Msg: fmt.Sprintf("unknown notification %q (want bell, osc9 or off)", c.Notify)}
	}
	switch c.OIDC.Login {
	case "", "device", "browser":
	default:
		return Console{}, &Error{File: name, Line: f.Console.Line, Field: "console.oidc.login", Msg: fmt.Sprintf("unknown login flow %q (want device or browser)", c.OIDC.Login)}
	}
	return c, nil
}

// mapping returns the value node of key in a mapping node.
func mapping(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
