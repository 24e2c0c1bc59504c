// The part of ECharts the desk draws with: bars, lines, a pie, axes, tooltips, legends, as
// SVG (text stays text, so Chinese renders with the page's CJK font). `cargo xtask` bundles
// this with esbuild into vendor/echarts.min.js, loaded only by the desk page.
import * as echarts from 'echarts/core';
import { BarChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

echarts.use([BarChart, LineChart, PieChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);
window.echarts = echarts;
