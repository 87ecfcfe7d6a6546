// A tiny React app on @bffgate/client/react, bundled by test/browser/react.test.ts with esbuild
// and type-checked with the rest of the repository (`npm run typecheck`) against react.d.ts.
import { useState } from 'react'
import { createRoot } from 'react-dom/client'
import type { SessionEndReason } from '../../../packages/bffgate-client/index.js'
import { useSessionEnded, useUser } from '../../../packages/bffgate-client/react.js'

declare global {
  interface Window {
    sessionEnded?: { reason: SessionEndReason; at: number }
  }
}

interface Claims {
  sub: string
  name: string
  [claim: string]: unknown
}

function App() {
  const { status, user, login, logout } = useUser<Claims>()
  const [ended, setEnded] = useState<SessionEndReason | null>(null)
  useSessionEnded(({ reason }) => {
    setEnded(reason)
    window.sessionEnded = { reason, at: Date.now() }
  })
  if (status === 'loading') return <p id="loading">Loading…</p>
  return (
    <main>
      {ended !== null && (
        <p id="ended" data-reason={ended}>
          Your session has ended ({ended}).{' '}
          <button id="again" onClick={() => login()}>
            Log in again
          </button>
        </p>
      )}
      {status === 'authenticated' && user !== null ? (
        <>
          <p>
            Hello, <b id="name">{user.claims.name}</b>
          </p>
          <button
            id="logout"
            onClick={() => {
              void logout()
            }}
          >
            Log out
          </button>
        </>
      ) : (
        <button id="login" onClick={() => login()}>
          Log in
        </button>
      )}
    </main>
  )
}

createRoot(document.getElementById('root')!).render(<App />)
