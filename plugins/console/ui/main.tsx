// Entry point of the browser console (bundled by scripts/build-console.mjs into plugins/console/build).

import 'uplot/dist/uPlot.min.css'
import './styles.css'
import { render } from 'preact'
import { App } from './app.js'

render(<App />, document.getElementById('app')!)
