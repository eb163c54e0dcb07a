package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/config"
)

// The files a prepared setup is kept in, for a server started by hand
// (`writ serve --config DIR/writ.yaml --policy DIR/policy.yaml`) and a
// bench run against it (`writ bench --server URL --setup DIR`).
const (
	ConfigFile = "writ.yaml"
	PolicyFile = "policy.yaml"
	KeysFile   = "keys.json" // private keys: mode 0600
)

// keysFile is the JSON of KeysFile.
type keysFile struct {
	Resource *agent.Key   `json:"resource"`
	Agents   []*agent.Key `json:"agents"`
}

// Save writes the configuration, the policy and the private keys into
// dir, which must not hold them already.
func (s *Setup) Save(dir string) error {
	cfg, err := s.ConfigYAML()
	if err != nil {
		return err
	}
	keys, err := json.Marshal(keysFile{Resource: s.Resource, Agents: s.Agents})
	if err != nil {
		return fmt.Errorf("load: encode the keys: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	for name, b := range map[string][]byte{ConfigFile: cfg, PolicyFile: PolicyYAML(), KeysFile: keys} {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("load: write %s: %w", path, err)
		}
		_, werr := f.Write(b)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("load: write %s: %w", path, werr)
		}
	}
	return nil
}

// LoadSetup reads a setup Save wrote.
func LoadSetup(dir string) (*Setup, error) {
	cfgPath, keysPath := filepath.Join(dir, ConfigFile), filepath.Join(dir, KeysFile)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	cfg, err := config.Parse(cfgPath, b)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(keysPath)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var kf keysFile
	if err := json.Unmarshal(kb, &kf); err != nil {
		return nil, fmt.Errorf("load: %s: %w", keysPath, err)
	}
	if kf.Resource == nil || len(kf.Agents) != len(cfg.Agents) {
		return nil, errors.New("load: " + keysPath + " does not hold the keys of " + cfgPath)
	}
	for i, k := range kf.Agents {
		if k == nil || k.AgentID != cfg.Agents[i].ID {
			return nil, fmt.Errorf("load: %s: key %d is not agent %s's", keysPath, i, cfg.Agents[i].ID)
		}
	}
	return &Setup{Config: cfg, Agents: kf.Agents, Resource: kf.Resource}, nil
}
