// llamactl's page theme, applied before the first paint (loaded without defer, in <head>): the
// choice made with the header's toggle (page.js), kept in this browser; none: the OS's.
'use strict'
try {
  const theme = localStorage.getItem('llamactl-theme')
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme
} catch {
  // storage refused: the OS's theme
}
