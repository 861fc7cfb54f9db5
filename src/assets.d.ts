// Files imported `with { type: 'text' }` are embedded by `bun build --compile` and arrive as strings.
declare module 'swagger-ui-dist/swagger-ui.css' {
  const text: string
  export default text
}
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const text: string
  export default text
}
