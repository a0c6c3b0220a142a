//go:build tools

// Pins cosign for egate's signature tests; scripts/cosign.sh builds it
// into target/cosign/VERSION/.
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
