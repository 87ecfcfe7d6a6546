// A tiny React app on @bffgate/client/react, bundled by the test with esbuild.
import { useState } from 'react'
import { createRoot } from 'react-dom/client'
import { useSessionEnded, useUser } from '@bffgate/client/react'

function App () {
  const { status, user, login, logout } = useUser()
  const [ended, setEnded] = useState(null)
  useSessionEnded(({ reason }) => {
    setEnded(reason)
    window.sessionEnded = { reason, at: Date.now() }
  })
  if (status === 'loading') return <p id="loading">Loading…</p>
  return (
    <main>
      {ended !== null && (
        <p id="ended" data-reason={ended}>Your session has ended ({ended}). <button id="again" onClick={() => login()}>Log in again</button></p>
      )}
      {status === 'authenticated'
        ? <><p>Hello, <b id="name">{user.claims.name}</b></p><button id="logout" onClick={() => logout()}>Log out</button></>
        : <button id="login" onClick={() => login()}>Log in</button>}
    </main>
  )
}

createRoot(document.getElementById('root')).render(<App />)
