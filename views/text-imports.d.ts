// Files the page embeds as text (`import x from '…' with { type: 'text' }`), so that
// `bun build --compile` puts them inside the binary.
declare module '*.css' {
  const text: string
  export default text
}
declare module '*.svg' {
  const text: string
  export default text
}
declare module '*/assets/page.js' {
  const text: string
  export default text
}
declare module 'htmx.org/dist/htmx.min.js' {
  const text: string
  export default text
}
declare module '*/assets/theme.js' {
  const text: string
  export default text
}
