package tui

import (
	"context"
	"errors"

	tea "charm.land/bubbletea/v2"
)

// NewProgram returns a Bubble Tea program running the console. Its context
// ends the event subscription when the program ends; send it SessionMsg
// and SessionEndedMsg as the operator's session changes outside the
// console.
func NewProgram(ctx context.Context, b Backend, opts Options, extra ...tea.ProgramOption) *tea.Program {
	opts.Context = ctx
	return tea.NewProgram(New(b, opts), append([]tea.ProgramOption{tea.WithContext(ctx)}, extra...)...)
}

// Run runs the console on the terminal until the operator quits or ctx
// ends (which is not an error).
func Run(ctx context.Context, b Backend, opts Options, extra ...tea.ProgramOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := NewProgram(ctx, b, opts, extra...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}
